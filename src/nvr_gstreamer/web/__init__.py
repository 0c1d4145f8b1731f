"""The web app's static files (``static/``): the live grid and the login page."""
