from crm_leads.main import main

main()
