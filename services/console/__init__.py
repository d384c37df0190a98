"""The web console: the Experiments page and the Performance dashboard.

The service serves an HTML shell per page and its static assets (vanilla JS modules,
CSS); the browser reads every number from the public APIs (``CONSOLE_API_BASE_URL``,
same origin through the gateway by default). See ``docs/console.md``.
"""
