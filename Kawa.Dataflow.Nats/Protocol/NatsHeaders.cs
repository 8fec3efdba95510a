using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Kawa.Dataflow.Nats.Protocol;

/// <summary>
/// NATS message headers (<c>NATS/1.0[ status[ description]]</c> then <c>Name: value</c> lines): ordered, multi-valued,
/// names compared case-insensitively but written as given.
/// </summary>
/// <remarks>Headers of a received message (<see cref="FromReceived"/>) keep the raw block and parse it into strings on
/// first use of anything but <see cref="StatusCode"/> and <see cref="HasEntries"/>, which read the bytes: a message
/// whose headers nobody reads costs no string. The lazy parse is safe to race (one result wins); mutating headers is
/// not thread-safe.</remarks>
internal sealed class NatsHeaders
{
    private static ReadOnlySpan<byte> Version => "NATS/1.0"u8;

    // A received block not parsed yet; its entries stay null until first needed.
    private readonly ReadOnlyMemory<byte> _raw;
    private List<KeyValuePair<string, string>>? _entries;
    private string? _statusDescription;

    public NatsHeaders()
    {
        _entries = [];
    }

    private NatsHeaders(ReadOnlyMemory<byte> raw)
    {
        _raw = raw;
        StatusCode = ReadStatusCode(raw.Span);
    }

    /// <summary>Headers over a received block that this object may keep (the caller never reuses it), parsed on
    /// first use.</summary>
    internal static NatsHeaders FromReceived(ReadOnlyMemory<byte> block) => new(block);

    /// <summary>The inline status code (100 heartbeat, 404, 408, 409, 503), or 0.</summary>
    public int StatusCode { get; private set; }

    /// <summary>The inline status description, e.g. <c>Consumer Deleted</c>.</summary>
    public string? StatusDescription
    {
        get
        {
            _ = Items;
            return _statusDescription;
        }
    }

    public int Count => Items.Count;

    public IReadOnlyList<KeyValuePair<string, string>> Entries => Items;

    /// <summary>Whether there is at least one field (<c>Count &gt; 0</c>), answered from the raw bytes while unparsed.</summary>
    internal bool HasEntries
    {
        get
        {
            var entries = Volatile.Read(ref _entries);
            return entries is not null ? entries.Count > 0 : HasFields(_raw.Span);
        }
    }

    private List<KeyValuePair<string, string>> Items => Volatile.Read(ref _entries) ?? ParseReceived();

    public void Add(string name, string value)
    {
        ValidateName(name);
        if (value.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            throw new ArgumentException($"Header '{name}' value must not contain CR or LF.", nameof(value));
        }

        Items.Add(new(name, value));
    }

    /// <summary>Replaces every value of <paramref name="name"/>.</summary>
    public void Set(string name, string value)
    {
        Remove(name);
        Add(name, value);
    }

    public bool Remove(string name) => Items.RemoveAll(e => string.Equals(e.Key, name, StringComparison.OrdinalIgnoreCase)) > 0;

    /// <summary>The first value of <paramref name="name"/>.</summary>
    public bool TryGetValue(string name, out string value)
    {
        foreach (var entry in Items)
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
        foreach (var entry in Items)
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
        foreach (var entry in Items)
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
        foreach (var entry in Items)
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
        headers.StatusCode = ParseBlock(span, headers._entries!, out headers._statusDescription);
        return headers;
    }

    /// <summary>The status code of a header block (0 when none), read from its first line without allocating.</summary>
    public static int ReadStatusCode(in ReadOnlySequence<byte> block)
    {
        if (block.IsSingleSegment)
        {
            return ReadStatusCode(block.FirstSpan);
        }

        var rented = ArrayPool<byte>.Shared.Rent((int)block.Length);
        try
        {
            block.CopyTo(rented);
            return ReadStatusCode(rented.AsSpan(0, (int)block.Length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <inheritdoc cref="ReadStatusCode(in ReadOnlySequence{byte})"/>
    public static int ReadStatusCode(ReadOnlySpan<byte> block) => CodeOf(StatusText(block), out _);

    /// <summary>The code at the start of a status text (0 when there is none); <paramref name="space"/> is where the
    /// description starts after it, or -1.</summary>
    private static int CodeOf(ReadOnlySpan<byte> status, out int space)
    {
        space = status.IndexOf((byte)' ');
        var codeSpan = space < 0 ? status : status[..space];
        return !codeSpan.IsEmpty && Utf8Parser.TryParse(codeSpan, out int code, out var consumed) && consumed == codeSpan.Length ? code : 0;
    }

    /// <summary>What follows the version on the first line, trimmed; empty without a version line.</summary>
    private static ReadOnlySpan<byte> StatusText(ReadOnlySpan<byte> block)
    {
        var eol = block.IndexOf("\r\n"u8);
        return eol >= 0 && block.StartsWith(Version) ? block[Version.Length..eol].Trim((byte)' ') : default;
    }

    private List<KeyValuePair<string, string>> ParseReceived()
    {
        var entries = new List<KeyValuePair<string, string>>();
        ParseBlock(_raw.Span, entries, out var description);
        _statusDescription = description;

        // Published after the description (a full fence), so whoever sees the entries sees it too.
        return Interlocked.CompareExchange(ref _entries, entries, null) ?? entries;
    }

    /// <summary>Parses a block into <paramref name="entries"/>; returns the status code.</summary>
    private static int ParseBlock(ReadOnlySpan<byte> span, List<KeyValuePair<string, string>> entries, out string? description)
    {
        // Lenient on purpose: headers come from any publisher, and one malformed block must not break the
        // connection. A block without the version line has no status; lines without a colon are skipped.
        description = null;
        var eol = span.IndexOf("\r\n"u8);
        if (eol < 0)
        {
            return 0;
        }

        var status = StatusText(span);
        var code = CodeOf(status, out var space);
        if (space >= 0)
        {
            description = Encoding.UTF8.GetString(status[(space + 1)..].Trim((byte)' '));
        }

        var rest = span[(eol + 2)..];
        while (NextField(ref rest, out var name, out var value))
        {
            entries.Add(new(Encoding.UTF8.GetString(name), Encoding.UTF8.GetString(value)));
        }

        return code;
    }

    /// <summary>Whether a received block holds a field, by the rules of <see cref="ParseBlock"/>, without allocating.</summary>
    private static bool HasFields(ReadOnlySpan<byte> span)
    {
        var eol = span.IndexOf("\r\n"u8);
        if (eol < 0)
        {
            return false;
        }

        var rest = span[(eol + 2)..];
        return NextField(ref rest, out _, out _);
    }

    /// <summary>The next <c>Name: value</c> line of <paramref name="rest"/> (both trimmed), skipping lines without a
    /// name and colon.</summary>
    private static bool NextField(ref ReadOnlySpan<byte> rest, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        while (!rest.IsEmpty)
        {
            var eol = rest.IndexOf("\r\n"u8);
            var line = eol < 0 ? rest : rest[..eol];
            rest = eol < 0 ? default : rest[(eol + 2)..];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                continue;
            }

            name = line[..colon].Trim((byte)' ');
            value = line[(colon + 1)..].Trim((byte)' ');
            return true;
        }

        name = default;
        value = default;
        return false;
    }

    public override string ToString()
        => (StatusCode != 0 ? $"{StatusCode} {StatusDescription} " : string.Empty) + string.Join(", ", Items.Select(e => $"{e.Key}: {e.Value}"));

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
