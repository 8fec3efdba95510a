using System.Text.Json.Serialization;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Tests.Parquet.Schema;

public class SchemaTests
{
    public sealed class Named
    {
        [ParquetColumn("custom_name")]
        public int A { get; init; }

        [JsonPropertyName("json_name")]
        public string? B { get; init; }

        [ParquetIgnore]
        public object? Ignored { get; init; }

        public string Required { get; init; } = "";

        public int? NullableInt { get; init; }

        public List<string?> Items { get; init; } = [];

        public Dictionary<string, double>? Map { get; init; }
    }

    public sealed class HasPointer
    {
        public int Ok { get; set; }

        public IntPtr Handle { get; set; }
    }

    public sealed class HasObject
    {
        public Inner2 Child { get; set; } = new();
    }

    public sealed class Inner2
    {
        public object? Anything { get; set; }
    }

    public sealed class SelfRef
    {
        public SelfRef? Next { get; set; }
    }

    public sealed class BadDecimal
    {
        [ParquetDecimal(40, 2)]
        public decimal Price { get; set; }
    }

    [Test]
    public void FromType_AttributesAndNullability_MapToNamesAndRepetition()
    {
        var schema = ParquetSchema.FromType<Named>();

        Assert.That(schema.Fields.Select(f => f.Name), Is.EqualTo(new[] { "custom_name", "json_name", "Required", "NullableInt", "Items", "Map" }));
        Assert.That(schema.Fields.Select(f => f.IsNullable), Is.EqualTo(new[] { false, true, false, true, false, true }));
        Assert.That(schema.Fields[4].Kind, Is.EqualTo(ParquetFieldKind.List));
        Assert.That(schema.Fields[4].Children[0].IsNullable, Is.True, "string? element is optional");
        Assert.That(schema.Fields[5].Kind, Is.EqualTo(ParquetFieldKind.Map));
        Assert.That(schema.Fields[5].Children[0].IsNullable, Is.False, "map keys are required");
        Assert.That(schema.Fields[5].Children[1].IsNullable, Is.False);
    }

    [Test]
    public void FromType_UnsupportedPropertyType_ErrorNamesPropertyAndType()
    {
        var ex = Assert.Throws<NotSupportedException>(() => ParquetSchema.FromType<HasPointer>());

        Assert.That(ex!.Message, Does.Contain("HasPointer.Handle").And.Contain("System.IntPtr"));
    }

    [Test]
    public void FromType_UnsupportedNestedType_ErrorNamesNestedPath()
    {
        var ex = Assert.Throws<NotSupportedException>(() => ParquetSchema.FromType<HasObject>());

        Assert.That(ex!.Message, Does.Contain("HasObject.Child.Anything").And.Contain("System.Object"));
    }

    [Test]
    public void FromType_RecursiveType_Fails()
    {
        var ex = Assert.Throws<NotSupportedException>(() => ParquetSchema.FromType<SelfRef>());

        Assert.That(ex!.Message, Does.Contain("SelfRef.Next").And.Contain("recursive"));
    }

    [Test]
    public void FromType_DecimalPrecisionAbove38_Fails()
    {
        var ex = Assert.Throws<NotSupportedException>(() => ParquetSchema.FromType<BadDecimal>());

        Assert.That(ex!.Message, Does.Contain("Price").And.Contain("DECIMAL(40, 2)"));
    }

    [Test]
    public void Builder_DuplicateColumn_Throws()
    {
        var builder = new ParquetSchemaBuilder().Add("a", ParquetValueType.Int32);

        Assert.Throws<ArgumentException>(() => builder.Add("a", ParquetValueType.String));
    }

    [Test]
    public void Builder_NoColumns_Throws()
    {
        Assert.Throws<InvalidOperationException>(() => new ParquetSchemaBuilder().Build());
    }
}
