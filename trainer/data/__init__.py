"""Data sets in their real on-disk layouts, read into plain tracklet indexes."""
