"""Screens: the three modes (search, timeline, graph) and the modal dialogs."""
