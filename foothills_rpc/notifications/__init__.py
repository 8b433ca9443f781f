"""What people are told: the notice table (notices.py), its templates (templates/), in the reader's
terms (wording.py), with calendar files (calendar.py)."""
