"""The collective model (spec section 3): network, widening, EWC, the criterion, training and run directories."""
