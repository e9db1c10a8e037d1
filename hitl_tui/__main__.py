from hitl_tui.warm.client import main

main()
