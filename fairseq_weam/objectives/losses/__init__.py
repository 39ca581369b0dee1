"""The loss math the objective terms share: the LM-head prediction loss and InfoNCE."""
