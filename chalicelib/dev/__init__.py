"""The dev stage (``chalice local``) only: the minute's conversions in a worker process, the
00:30 daily build, and the event inspector behind /_dev. Only app.py imports this package
(a deployed stage never starts any of it); it may import every other stage.
"""
