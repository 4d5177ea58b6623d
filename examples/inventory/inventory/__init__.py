"""A tiny inventory domain: enough real code for the gates to judge."""
