"""The CG side: bead geometry, priors, the CGSchNet network and its frozen fast forces, training, simulation, export, the time-step check."""
