"""Inputs: images (astropy objects or FITS files), catalog files, visit directories."""
