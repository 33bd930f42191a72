"""Small list tables the multiple-list tests share."""

import pandas as pd

# A 3-list table: counts of the 7 observed patterns (list A first), count column "n".
SMALL = pd.DataFrame(
    [
        (1, 0, 0, 40),
        (0, 1, 0, 35),
        (0, 0, 1, 30),
        (1, 1, 0, 12),
        (1, 0, 1, 9),
        (0, 1, 1, 7),
        (1, 1, 1, 5),
    ],
    columns=["A", "B", "C", "n"],
)
