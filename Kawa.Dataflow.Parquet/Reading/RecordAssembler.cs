using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Reading;

/// <summary>
/// Rebuilds records from decoded leaf columns (Dremel assembly): groups become
/// <c>Dictionary&lt;string, object?&gt;</c>, lists <c>object?[]</c>, maps <c>Dictionary&lt;object, object?&gt;</c>.
/// </summary>
internal sealed class RecordAssembler
{
    private readonly Node[] _top;
    private readonly ColumnData[] _columns;

    public RecordAssembler(ParquetSchema schema, ColumnData[] columns)
    {
        _columns = columns;
        int leaf = 0;
        _top = schema.Fields.Select(f => Build(f, 0, 0, ref leaf)).ToArray();
    }

    private sealed class Node
    {
        public required ParquetField Field;
        public int Def;      // definition level when this field is present
        public int RepDef;   // lists/maps: level when the repeated group has an entry
        public int RepLevel; // lists/maps: repetition level of the repeated group
        public int FirstLeaf;
        public int LeafEnd;
        public Node[] Children = [];
    }

    private static Node Build(ParquetField f, int def, int rep, ref int leaf)
    {
        var n = new Node { Field = f, Def = f.IsNullable ? def + 1 : def, FirstLeaf = leaf };
        switch (f.Kind)
        {
            case ParquetFieldKind.Value:
                leaf++;
                break;
            case ParquetFieldKind.Group:
                {
                    var children = new Node[f.Children.Count];
                    for (int i = 0; i < children.Length; i++) children[i] = Build(f.Children[i], n.Def, rep, ref leaf);
                    n.Children = children;
                    break;
                }

            default:
                {
                    n.RepDef = n.Def + 1;
                    n.RepLevel = rep + 1;
                    var children = new Node[f.Children.Count];
                    for (int i = 0; i < children.Length; i++) children[i] = Build(f.Children[i], n.RepDef, rep + 1, ref leaf);
                    n.Children = children;
                    break;
                }
        }

        n.LeafEnd = leaf;
        return n;
    }

    /// <summary>Assembles the next record as one value per top-level field.</summary>
    public object?[] Next()
    {
        var row = new object?[_top.Length];
        for (int i = 0; i < _top.Length; i++)
        {
            row[i] = Assemble(_top[i]);
        }

        return row;
    }

    private int PeekDef(int leaf)
    {
        var c = _columns[leaf];
        return c.Def is null ? int.MaxValue : c.Def[c.EntryPos];
    }

    private bool ContinuesAt(int leaf, int repLevel)
    {
        var c = _columns[leaf];
        return c.EntryPos < c.Entries && c.Rep is not null && c.Rep[c.EntryPos] == repLevel;
    }

    private void SkipEntry(Node n)
    {
        for (int l = n.FirstLeaf; l < n.LeafEnd; l++)
        {
            _columns[l].EntryPos++;
        }
    }

    private object? Assemble(Node n)
    {
        var f = n.Field;
        int d = PeekDef(n.FirstLeaf);
        if (f.IsNullable && d < n.Def)
        {
            SkipEntry(n);
            return null;
        }

        switch (f.Kind)
        {
            case ParquetFieldKind.Value:
                {
                    var c = _columns[n.FirstLeaf];
                    c.EntryPos++;
                    return c.Values[c.ValuePos++];
                }

            case ParquetFieldKind.Group:
                {
                    var g = new Dictionary<string, object?>(n.Children.Length, StringComparer.Ordinal);
                    foreach (var child in n.Children) g[child.Field.Name] = Assemble(child);
                    return g;
                }

            case ParquetFieldKind.List:
                {
                    if (d < n.RepDef)
                    {
                        SkipEntry(n);
                        return Array.Empty<object?>();
                    }

                    var items = new List<object?>();
                    do
                    {
                        items.Add(Assemble(n.Children[0]));
                    }
                    while (ContinuesAt(n.FirstLeaf, n.RepLevel));
                    return items.ToArray();
                }

            default:
                {
                    var map = new Dictionary<object, object?>();
                    if (d < n.RepDef)
                    {
                        SkipEntry(n);
                        return map;
                    }

                    do
                    {
                        var key = Assemble(n.Children[0]) ?? throw new InvalidDataException($"Map '{f.DisplayPath}' has a null key.");
                        map[key] = Assemble(n.Children[1]);
                    }
                    while (ContinuesAt(n.FirstLeaf, n.RepLevel));
                    return map;
                }
        }
    }
}
