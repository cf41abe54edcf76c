"""The console's pages, one module each; bot/web/app.py lists them (see bot/web/__init__)."""
