using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

/// <summary>
/// The schema elements written for lists and maps follow the Parquet spec's three-level layout
/// (LogicalTypes.md, "Nested Types"), seen through DuckDB's raw <c>parquet_schema()</c> and our reader's schema.
/// </summary>
public class NestedLayoutTests
{
    /// <summary>Maps whose values are a struct, a required value type, and a list of maps.</summary>
    public sealed record MapValues
    {
        public int Id { get; init; }

        public Dictionary<string, Inner?>? ByName { get; init; }

        public Dictionary<string, Guid> Ids { get; init; } = [];

        public List<Dictionary<string, long>?>? Nested { get; init; }
    }

    /// <summary>
    /// One schema element as DuckDB reports it: a leaf as name:TYPE:REPETITION, a group as
    /// name:group:REPETITION:children:CONVERTED_TYPE.
    /// </summary>
    private static List<string> RawSchema(string path)
    {
        var r = DuckDb.Query($"select name, type, repetition_type, num_children::BIGINT as children, converted_type from parquet_schema({DuckDb.Lit(path)})");
        var elements = new List<string>();
        for (int i = 1; i < r.Rows.Length; i++)
        {
            elements.Add(r.Str(i, "type") is { } type
                ? $"{r.Str(i, "name")}:{type}:{r.Str(i, "repetition_type")}"
                : $"{r.Str(i, "name")}:group:{r.Str(i, "repetition_type")}:{r.Str(i, "children")}:{r.Str(i, "converted_type") ?? "-"}");
        }

        return elements;
    }

    [Test]
    public async Task WriteAsync_ListsStructsAndMaps_SchemaHasThreeLevelListAndKeyValueMapGroups()
    {
        using var dir = new TempDir();
        var path = await RoundTripTests.WriteAsync(dir, TestRows.Nested());

        var expected = new[]
        {
            "Id:INT32:REQUIRED",

            // List<Inner?>? = list<struct<list<int?>, string?>>: <list> (LIST) { repeated group list { element } }.
            "Items:group:OPTIONAL:1:LIST",
            "list:group:REPEATED:1:-",
            "element:group:OPTIONAL:2:-",
            "Values:group:OPTIONAL:1:LIST",
            "list:group:REPEATED:1:-",
            "element:INT32:OPTIONAL",
            "Label:BYTE_ARRAY:OPTIONAL",

            // Dictionary<string, int?>?: <map> (MAP) { repeated group key_value { required key; value } }.
            "Counts:group:OPTIONAL:1:MAP",
            "key_value:group:REPEATED:2:-",
            "key:BYTE_ARRAY:REQUIRED",
            "value:INT32:OPTIONAL",

            // Dictionary<string, List<string>>?: the map value is itself a three-level (required) list.
            "Tags:group:OPTIONAL:1:MAP",
            "key_value:group:REPEATED:2:-",
            "key:BYTE_ARRAY:REQUIRED",
            "value:group:REQUIRED:1:LIST",
            "list:group:REPEATED:1:-",
            "element:BYTE_ARRAY:REQUIRED",

            // Inner? (a plain struct, no LIST/MAP annotation) holding a list.
            "Single:group:OPTIONAL:2:-",
            "Values:group:OPTIONAL:1:LIST",
            "list:group:REPEATED:1:-",
            "element:INT32:OPTIONAL",
            "Label:BYTE_ARRAY:OPTIONAL",

            // string[] (required list, required element).
            "Names:group:REQUIRED:1:LIST",
            "list:group:REPEATED:1:-",
            "element:BYTE_ARRAY:REQUIRED",

            // IReadOnlyList<long>?.
            "Longs:group:OPTIONAL:1:LIST",
            "list:group:REPEATED:1:-",
            "element:INT64:REQUIRED",

            // List<List<int?>?>?: the element of the outer list is itself a LIST group.
            "Matrix:group:OPTIONAL:1:LIST",
            "list:group:REPEATED:1:-",
            "element:group:OPTIONAL:1:LIST",
            "list:group:REPEATED:1:-",
            "element:INT32:OPTIONAL",
        };

        Assert.That(RawSchema(path), Is.EqualTo(expected));
    }

    [Test]
    public async Task WriteAsync_MapsOfStructsValuesAndListsOfMaps_SchemaHasKeyValueGroups()
    {
        using var dir = new TempDir();
        var rows = new List<MapValues>
        {
            new() { Id = 1, ByName = new() { ["a"] = new Inner([1, null], "x"), ["b"] = null }, Ids = new() { ["k"] = Guid.Empty }, Nested = [new() { ["n"] = 5 }, null, []] },
            new() { Id = 2 },
        };
        var path = await RoundTripTests.WriteAsync(dir, rows);

        var expected = new[]
        {
            "Id:INT32:REQUIRED",
            "ByName:group:OPTIONAL:1:MAP",
            "key_value:group:REPEATED:2:-",
            "key:BYTE_ARRAY:REQUIRED",
            "value:group:OPTIONAL:2:-",
            "Values:group:OPTIONAL:1:LIST",
            "list:group:REPEATED:1:-",
            "element:INT32:OPTIONAL",
            "Label:BYTE_ARRAY:OPTIONAL",
            "Ids:group:REQUIRED:1:MAP",
            "key_value:group:REPEATED:2:-",
            "key:BYTE_ARRAY:REQUIRED",
            "value:FIXED_LEN_BYTE_ARRAY:REQUIRED",
            "Nested:group:OPTIONAL:1:LIST",
            "list:group:REPEATED:1:-",
            "element:group:OPTIONAL:1:MAP",
            "key_value:group:REPEATED:2:-",
            "key:BYTE_ARRAY:REQUIRED",
            "value:INT64:REQUIRED",
        };

        Assert.That(RawSchema(path), Is.EqualTo(expected));
        var values = DuckDb.Query($"select to_json(ByName)::varchar as b, to_json(Ids)::varchar as i, to_json(Nested)::varchar as n from read_parquet({DuckDb.Lit(path)}) order by Id");
        Assert.That(values.Str(0, "b"), Is.EqualTo("{\"a\":{\"Values\":[1,null],\"Label\":\"x\"},\"b\":null}"));
        Assert.That(values.Str(0, "i"), Is.EqualTo("{\"k\":\"00000000-0000-0000-0000-000000000000\"}"));
        Assert.That(values.Str(0, "n"), Is.EqualTo("[{\"n\":5},null,{}]"));
        Assert.That(values.Str(1, "i"), Is.EqualTo("{}"));
    }

    [Test]
    public async Task WriteAsync_ListsAndMaps_LogicalTypesAnnotateTheOuterGroupsOnly()
    {
        using var dir = new TempDir();
        var path = await RoundTripTests.WriteAsync(dir, TestRows.Nested());

        var r = DuckDb.Query($"select name, logical_type from parquet_schema({DuckDb.Lit(path)}) where converted_type in ('LIST', 'MAP') or name in ('list', 'key_value')");
        var byName = Enumerable.Range(0, r.Rows.Length).Select(i => (Name: r.Str(i, "name")!, Logical: r.Str(i, "logical_type"))).ToList();

        Assert.Multiple(() =>
        {
            foreach (var (name, logical) in byName)
            {
                switch (name)
                {
                    case "list" or "key_value":
                        Assert.That(logical, Is.Null, $"the repeated group {name} carries no annotation");
                        break;
                    case "Counts" or "Tags":
                        Assert.That(logical, Does.Contain("MapType"), name);
                        break;
                    default:
                        Assert.That(logical, Does.Contain("ListType"), name);
                        break;
                }
            }
        });
        Assert.That(byName.Count(e => e.Name == "list"), Is.EqualTo(8), "every list has its repeated group");
        Assert.That(byName.Count(e => e.Name == "key_value"), Is.EqualTo(2), "every map has its repeated group");
    }

    [Test]
    public async Task OpenAsync_NestedFile_ReaderSchemaSeesListsOfStructsOfListsAndMaps()
    {
        using var dir = new TempDir();
        var path = await RoundTripTests.WriteAsync(dir, TestRows.Nested());

        await using var reader = await ParquetReader.OpenAsync(path);
        var fields = reader.Schema.Fields.ToDictionary(f => f.Name);

        var items = fields["Items"];
        Assert.That((items.Kind, items.IsNullable), Is.EqualTo((ParquetFieldKind.List, true)));
        var element = items.Children.Single();
        Assert.That((element.Kind, element.IsNullable), Is.EqualTo((ParquetFieldKind.Group, true)));
        Assert.That(element.Children.Select(c => c.Name), Is.EqualTo(new[] { "Values", "Label" }));
        var values = element.Children[0];
        Assert.That((values.Kind, values.IsNullable), Is.EqualTo((ParquetFieldKind.List, true)));
        Assert.That((values.Children[0].Kind, values.Children[0].ValueType, values.Children[0].IsNullable), Is.EqualTo((ParquetFieldKind.Value, ParquetValueType.Int32, true)));

        var counts = fields["Counts"];
        Assert.That((counts.Kind, counts.IsNullable), Is.EqualTo((ParquetFieldKind.Map, true)));
        Assert.That(counts.Children.Select(c => (c.Kind, c.ValueType, c.IsNullable)),
            Is.EqualTo(new[] { (ParquetFieldKind.Value, ParquetValueType.String, false), (ParquetFieldKind.Value, ParquetValueType.Int32, true) }));

        var tags = fields["Tags"];
        Assert.That(tags.Kind, Is.EqualTo(ParquetFieldKind.Map));
        Assert.That((tags.Children[1].Kind, tags.Children[1].IsNullable), Is.EqualTo((ParquetFieldKind.List, false)));

        var names = fields["Names"];
        Assert.That((names.Kind, names.IsNullable, names.Children[0].IsNullable), Is.EqualTo((ParquetFieldKind.List, false, false)));

        var matrix = fields["Matrix"];
        Assert.That((matrix.Children[0].Kind, matrix.Children[0].IsNullable), Is.EqualTo((ParquetFieldKind.List, true)));
    }
}
