"""Self-checks for the tutorial notebooks' exercises: each compares a student's answer with the student's own run."""
