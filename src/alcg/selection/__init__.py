"""Selection: the selectors and the RMSD coverage they use."""
