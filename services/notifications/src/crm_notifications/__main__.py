from crm_notifications.main import main

main()
