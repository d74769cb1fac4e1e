from crm_support.main import main

main()
