from hitl_tui.cli import entrypoint

entrypoint()
