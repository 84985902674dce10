"""The shared floor: fields that report bad input, styles, live plotly figures, job outcomes, page wording."""
