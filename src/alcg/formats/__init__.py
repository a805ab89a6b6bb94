"""The files between rules: each module is the one owner of one file's layout."""
