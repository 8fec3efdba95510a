using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Kawa.Dataflow.Nats.Protocol;

/// <summary>
/// NATS message headers (<c>NATS/1.0[ status[ description]]</c> then <c>Name: value</c> lines): ordered, multi-valued,
/// names compared case-insensitively but written as given.
/// </summary>
internal sealed class NatsHeaders
{
    private static ReadOnlySpan<byte> Version => "NATS/1.0"u8;

    private readonly List<KeyValuePair<string, string>> _entries = [];

    /// <summary>The inline status code (100 heartbeat, 404, 408, 409, 503), or 0.</summary>
    public int StatusCode { get; private set; }

    /// <summary>The inline status description, e.g. <c>Consumer Deleted</c>.</summary>
    public string? StatusDescription { get; private set; }

    public int Count => _entries.Count;

    public IReadOnlyList<KeyValuePair<string, string>> Entries => _entries;

    public void Add(string name, string value)
    {
        ValidateName(name);
        if (value.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            throw new ArgumentException($"Header '{name}' value must not contain CR or LF.", nameof(value));
        }

        _entries.Add(new(name, value));
    }

    /// <summary>Replaces every value of <paramref name="name"/>.</summary>
    public void Set(string name, string value)
    {
        Remove(name);
        Add(name, value);
    }

    public bool Remove(string name) => _entries.RemoveAll(e => string.Equals(e.Key, name, StringComparison.OrdinalIgnoreCase)) > 0;

    /// <summary>The first value of <paramref name="name"/>.</summary>
    public bool TryGetValue(string name, out string value)
    {
        foreach (var entry in _entries)
        {
            if (string.Equals(entry.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                value = entry.Value;
                return true;
            }
        }

        value = string.Empty;
        return false;
    }

    public string? this[string name] => TryGetValue(name, out var value) ? value : null;

    public IEnumerable<string> GetValues(string name)
    {
        foreach (var entry in _entries)
        {
            if (string.Equals(entry.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                yield return entry.Value;
            }
        }
    }

    /// <summary>Bytes <see cref="WriteTo"/> writes.</summary>
    public int GetByteCount()
    {
        var count = Version.Length + 2 + 2;
        foreach (var entry in _entries)
        {
            count += Encoding.UTF8.GetByteCount(entry.Key) + 2 + Encoding.UTF8.GetByteCount(entry.Value) + 2;
        }

        return count;
    }

    public void WriteTo(IBufferWriter<byte> writer)
    {
        var span = writer.GetSpan(GetByteCount());
        var written = Write(span);
        writer.Advance(written);
    }

    public int Write(Span<byte> span)
    {
        var pos = 0;
        Version.CopyTo(span);
        pos += Version.Length;
        span[pos++] = (byte)'\r';
        span[pos++] = (byte)'\n';
        foreach (var entry in _entries)
        {
            pos += Encoding.UTF8.GetBytes(entry.Key, span[pos..]);
            span[pos++] = (byte)':';
            span[pos++] = (byte)' ';
            pos += Encoding.UTF8.GetBytes(entry.Value, span[pos..]);
            span[pos++] = (byte)'\r';
            span[pos++] = (byte)'\n';
        }

        span[pos++] = (byte)'\r';
        span[pos++] = (byte)'\n';
        return pos;
    }

    /// <summary>Parses a header block (status line, fields, blank line); never throws on malformed content.</summary>
    public static NatsHeaders Parse(in ReadOnlySequence<byte> block)
    {
        byte[]? rented = null;
        try
        {
            ReadOnlySpan<byte> span;
            if (block.IsSingleSegment)
            {
                span = block.FirstSpan;
            }
            else
            {
                rented = ArrayPool<byte>.Shared.Rent((int)block.Length);
                block.CopyTo(rented);
                span = rented.AsSpan(0, (int)block.Length);
            }

            return Parse(span);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    public static NatsHeaders Parse(ReadOnlySpan<byte> span)
    {
        var headers = new NatsHeaders();
        // Lenient on purpose: headers come from any publisher, and one malformed block must not break the
        // connection. A block without the version line has no status; lines without a colon are skipped.
        var eol = span.IndexOf("\r\n"u8);
        if (eol < 0)
        {
            return headers;
        }

        var status = span.StartsWith(Version) ? span[Version.Length..eol].Trim((byte)' ') : default;
        if (!status.IsEmpty)
        {
            var space = status.IndexOf((byte)' ');
            var codeSpan = space < 0 ? status : status[..space];
            if (!Utf8Parser.TryParse(codeSpan, out int code, out var consumed) || consumed != codeSpan.Length)
            {
                code = 0;
            }

            headers.StatusCode = code;
            if (space >= 0)
            {
                headers.StatusDescription = Encoding.UTF8.GetString(status[(space + 1)..].Trim((byte)' '));
            }
        }

        var rest = span[(eol + 2)..];
        while (!rest.IsEmpty)
        {
            eol = rest.IndexOf("\r\n"u8);
            var line = eol < 0 ? rest : rest[..eol];
            rest = eol < 0 ? default : rest[(eol + 2)..];
            if (line.IsEmpty)
            {
                continue;
            }

            var colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                continue;
            }

            var name = Encoding.UTF8.GetString(line[..colon].Trim((byte)' '));
            var value = Encoding.UTF8.GetString(line[(colon + 1)..].Trim((byte)' '));
            headers._entries.Add(new(name, value));
        }

        return headers;
    }

    public override string ToString()
        => (StatusCode != 0 ? $"{StatusCode} {StatusDescription} " : string.Empty) + string.Join(", ", _entries.Select(e => $"{e.Key}: {e.Value}"));

    private static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException("Header name must not be empty.", nameof(name));
        }

        foreach (var c in name)
        {
            if (c <= ' ' || c == ':' || c > '~')
            {
                throw new ArgumentException($"Header name '{name}' may only hold printable ASCII without ':' or spaces.", nameof(name));
            }
        }
    }
}
