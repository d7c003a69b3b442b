"""The leaf of facegate: errors, ids and vector checks that every layer shares; imports nothing of facegate."""
