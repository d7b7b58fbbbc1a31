"""The log propagator: feeds global secondary indexes from the table partition logs."""
