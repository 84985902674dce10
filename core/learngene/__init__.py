"""The learngene (spec section 4): selection rules on the criterion, and learngene files."""
