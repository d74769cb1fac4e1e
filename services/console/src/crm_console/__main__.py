from crm_console.main import main

main()
