"""The demo workspace: what `make run` shows a newcomer."""
