"""The compliance officers' workspace: server-rendered pages under `/ui/`, and the offline API docs."""
