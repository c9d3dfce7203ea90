"""Risk findings on cached policies and "who can do this?" answered from the cache."""
