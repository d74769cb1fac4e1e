from crm_sales.main import main

main()
