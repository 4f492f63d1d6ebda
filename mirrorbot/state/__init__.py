"""State kept in git: JSON files per namespace (store) and the repository holding them (gitrepo)."""
