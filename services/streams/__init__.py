"""The stream reader of global tables: follows the partition logs of replicated tables."""
