"""Studies over many fits: parameter recovery, the border model's recovery, prior sensitivity."""
