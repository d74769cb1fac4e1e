from crm_orders.main import main

main()
