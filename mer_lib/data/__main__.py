"""``python -m mer_lib.data --root data/demo [--scale demo|tiny|mer2024]`` writes the demo dataset."""
from .demo import main

main()
