"""A user's own package: the nets of a small image GAN and the builder that dgflow-bench calls."""
