"""The bridge from Label Studio: import its projects with every annotator's work (``services``, the labelling
config and tasks read by the pure ``parsing`` module), and Sentio as its ML backend (``api``). See README.md."""
