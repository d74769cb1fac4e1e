from crm_reporting.main import main

main()
