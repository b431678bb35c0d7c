"""The host half of mvbridge. Internal: use the names ``mvbridge`` exports."""
