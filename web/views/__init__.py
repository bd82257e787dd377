"""The dashboard's views, one module per noun; web/dashboard.py wires them to their URLs."""
