using System.Globalization;
using System.Text.Json;

namespace Kawa.Dataflow.Cli.Events;

/// <summary>Writes an <see cref="EventRecord"/>'s fields as one JSON object (stdout, the Parquet <c>_extra</c> column).</summary>
/// <remarks>
/// Field order is kept. Timestamps are ISO 8601 round-trip strings; non-finite doubles (NaN, ±Infinity, which JSON
/// cannot hold) are written as strings; nested JSON is written as is.
/// </remarks>
internal static class EventRecordJson
{
    /// <summary>Writes the fields of <paramref name="record"/>, optionally only those <paramref name="include"/> accepts.</summary>
    public static void Write(Utf8JsonWriter writer, EventRecord record, Func<string, bool>? include = null)
    {
        writer.WriteStartObject();
        for (var i = 0; i < record.Count; i++)
        {
            var (name, value) = record.GetAt(i);
            if (include is not null && !include(name))
            {
                continue;
            }

            writer.WritePropertyName(name);
            WriteValue(writer, value);
        }

        writer.WriteEndObject();
    }

    /// <summary>Writes one value.</summary>
    public static void WriteValue(Utf8JsonWriter writer, FieldValue value)
    {
        switch (value.Kind)
        {
            case FieldKind.Null:
                writer.WriteNullValue();
                break;
            case FieldKind.String:
                writer.WriteStringValue(value.AsString());
                break;
            case FieldKind.Long:
                writer.WriteNumberValue(value.AsLong());
                break;
            case FieldKind.Double:
                var d = value.AsDouble();
                if (double.IsFinite(d))
                {
                    writer.WriteNumberValue(d);
                }
                else
                {
                    writer.WriteStringValue(d.ToString(CultureInfo.InvariantCulture));
                }

                break;
            case FieldKind.Bool:
                writer.WriteBooleanValue(value.AsBool());
                break;
            case FieldKind.Timestamp:
                writer.WriteStringValue(value.AsTimestamp().ToString("o", CultureInfo.InvariantCulture));
                break;
            case FieldKind.Json:
                value.AsJson().WriteTo(writer);
                break;
        }
    }
}
