"""Long-running: the hot folder and its watcher, the deployment, the runs view and the web page.
"""
