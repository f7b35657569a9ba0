"""What people read: terminal tables, plots, the protocol diagram, HTML reports, explanations."""
