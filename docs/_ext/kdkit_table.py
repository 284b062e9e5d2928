"""A docutils table from rows of cells, for the kit's directives: a cell is
text, or a node (a literal) to put in its paragraph."""
from docutils import nodes


def table(widths, header, rows):
    """A table node with columns of @widths, a @header row and @rows."""
    group = nodes.tgroup(cols=len(widths))
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += _row(header)
    body = nodes.tbody()
    for cells in rows:
        body += _row(cells)
    group += head
    group += body
    result = nodes.table()
    result += group
    return result


def _row(cells):
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += nodes.paragraph("", "", nodes.Text(cell) if isinstance(cell, str) else cell)
        row += entry
    return row
