from crm_customers.main import main

main()
