"""The item browser: every item of a project for its leads and reviewers (see README.md)."""
