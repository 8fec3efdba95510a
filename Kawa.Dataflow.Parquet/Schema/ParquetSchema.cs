using Kawa.Dataflow.Parquet.Format;

namespace Kawa.Dataflow.Parquet.Schema;

/// <summary>
/// The schema of a Parquet file: its top-level fields. Build one from a .NET type with
/// <see cref="FromType{T}"/>, at run time with <see cref="ParquetSchemaBuilder"/>, or read it from a file with
/// <see cref="Reading.ParquetReader.Schema"/>.
/// </summary>
public sealed class ParquetSchema
{
    internal ParquetSchema(IReadOnlyList<ParquetField> fields, Type? rowType)
    {
        Fields = fields;
        RowType = rowType;
        var leaves = new List<ColumnDescriptor>();
        foreach (var f in fields)
        {
            CollectLeaves(f, [], 0, 0, leaves);
        }

        Columns = leaves;
    }

    /// <summary>The top-level fields in column order.</summary>
    public IReadOnlyList<ParquetField> Fields { get; }

    /// <summary>The .NET type the schema was built from (null for dynamic or file schemas).</summary>
    public Type? RowType { get; }

    /// <summary>Leaf columns in file order with their Dremel levels.</summary>
    internal IReadOnlyList<ColumnDescriptor> Columns { get; }

    /// <summary>Builds the schema of <typeparamref name="T"/>'s public properties.</summary>
    /// <typeparam name="T">A class or record.</typeparam>
    /// <param name="timestampUnit">Unit for DateTime/DateTimeOffset properties.</param>
    /// <exception cref="NotSupportedException">A property has a type that cannot be mapped; the message names the property and type.</exception>
    public static ParquetSchema FromType<T>(ParquetTimestampUnit timestampUnit = ParquetTimestampUnit.Microseconds) =>
        ClrSchemaFactory.Build(typeof(T), timestampUnit);

    /// <inheritdoc />
    public override string ToString() => string.Join(Environment.NewLine, Fields);

    private static void CollectLeaves(ParquetField field, List<string> path, int def, int rep, List<ColumnDescriptor> leaves)
    {
        if (field.IsNullable)
        {
            def++;
        }

        path.Add(field.Name);
        switch (field.Kind)
        {
            case ParquetFieldKind.Value:
                leaves.Add(new ColumnDescriptor(field, [.. path], def, rep));
                break;
            case ParquetFieldKind.Group:
                foreach (var c in field.Children)
                {
                    CollectLeaves(c, path, def, rep, leaves);
                }

                break;
            case ParquetFieldKind.List:
                if (field.IsTwoLevelList)
                {
                    // Legacy two-level list: the repeated field is itself the (required) element.
                    CollectLeaves(field.Children[0], path, def + 1, rep + 1, leaves);
                }
                else
                {
                    path.Add(field.RepeatedGroupName ?? "list");
                    CollectLeaves(field.Children[0], path, def + 1, rep + 1, leaves);
                    path.RemoveAt(path.Count - 1);
                }

                break;
            case ParquetFieldKind.Map:
                path.Add(field.RepeatedGroupName ?? "key_value");
                CollectLeaves(field.Children[0], path, def + 1, rep + 1, leaves);
                CollectLeaves(field.Children[1], path, def + 1, rep + 1, leaves);
                path.RemoveAt(path.Count - 1);
                break;
        }

        path.RemoveAt(path.Count - 1);
    }
}

/// <summary>A leaf column: its field, path in the schema, and maximum definition and repetition levels.</summary>
internal sealed class ColumnDescriptor
{
    public ColumnDescriptor(ParquetField field, string[] path, int maxDef, int maxRep)
    {
        Field = field;
        Path = path;
        MaxDefinitionLevel = maxDef;
        MaxRepetitionLevel = maxRep;
        DottedPath = string.Join('.', path);
    }

    public ParquetField Field { get; }

    public string[] Path { get; }

    public string DottedPath { get; }

    public int MaxDefinitionLevel { get; }

    public int MaxRepetitionLevel { get; }

    public int Index { get; set; }
}
