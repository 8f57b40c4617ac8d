"""The card vault: a process of its own that holds card numbers, so the app never does."""
