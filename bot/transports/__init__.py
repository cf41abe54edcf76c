"""Chat platforms behind one small protocol (base.py); only app.py picks a concrete one."""
