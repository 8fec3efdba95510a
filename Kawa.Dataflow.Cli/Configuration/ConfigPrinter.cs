using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>Prints the merged configuration (file, environment, overrides) as JSON, secrets masked.</summary>
internal static class ConfigPrinter
{
    /// <summary>The effective configuration as indented JSON; every secret value is <c>***</c>.</summary>
    public static string ToMaskedJson(IConfiguration configuration)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            WriteObject(writer, configuration.GetChildren());
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteObject(Utf8JsonWriter writer, IEnumerable<IConfigurationSection> children)
    {
        writer.WriteStartObject();
        foreach (var child in children)
        {
            writer.WritePropertyName(child.Key);
            WriteValue(writer, child);
        }

        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, IConfigurationSection section)
    {
        var children = section.GetChildren().ToList();
        if (children.Count == 0)
        {
            if (section.Value is null)
            {
                writer.WriteNullValue();
            }
            else
            {
                writer.WriteStringValue(Secrets.Show(section.Path, section.Value));
            }

            return;
        }

        if (Secrets.IsSecretKey(section.Key))
        {
            writer.WriteStringValue(Secrets.Mask);
            return;
        }

        if (children.TrueForAll(c => int.TryParse(c.Key, out _)))
        {
            writer.WriteStartArray();
            foreach (var child in children.OrderBy(c => int.Parse(c.Key, System.Globalization.CultureInfo.InvariantCulture)))
            {
                WriteValue(writer, child);
            }

            writer.WriteEndArray();
            return;
        }

        WriteObject(writer, children);
    }
}
