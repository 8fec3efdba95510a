using System.Globalization;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// The writer's <see cref="ILakeStorage.MaxFileAge"/> as carried in temporary names and file names: <c>a</c> followed
/// by whole seconds in decimal (rounded up, no leading zero), e.g. <c>a7200</c> for 2 hours.
/// </summary>
/// <remarks>
/// Startup cleanup takes another instance's leftover for dead only when it is older than twice the larger of its own
/// <c>MaxFileAge</c> and the age its writer declared, so writers with different ages can share one lake. A name without
/// a token (the format before it existed), or with a malformed one, declares nothing.
/// </remarks>
internal static class LakeDeclaredAge
{
    /// <summary>The token's first character.</summary>
    public const char Tag = 'a';

    /// <summary>The largest number of seconds a token may carry: the whole seconds of <see cref="TimeSpan.MaxValue"/>.</summary>
    public const long MaxSeconds = long.MaxValue / TimeSpan.TicksPerSecond;

    private const int MaxDigits = 12; // MaxSeconds has 12 digits

    /// <summary>The token for <paramref name="maxFileAge"/> (positive): whole seconds, rounded up, at most <see cref="MaxSeconds"/>.</summary>
    public static string Format(TimeSpan maxFileAge)
    {
        var seconds = maxFileAge.Ticks / TimeSpan.TicksPerSecond + (maxFileAge.Ticks % TimeSpan.TicksPerSecond > 0 ? 1 : 0);
        return Tag + Math.Clamp(seconds, 1, MaxSeconds).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Reads a token made by <see cref="Format"/>; strict: <c>a</c>, then 1 to 12 ASCII digits, the first not 0.</summary>
    /// <returns><see langword="false"/> (and <paramref name="maxFileAge"/> zero) if <paramref name="token"/> is not one.</returns>
    public static bool TryParse(ReadOnlySpan<char> token, out TimeSpan maxFileAge)
    {
        maxFileAge = TimeSpan.Zero;
        if (token.Length < 2 || token.Length > MaxDigits + 1 || token[0] != Tag || token[1] == '0')
        {
            return false;
        }
        long seconds = 0;
        foreach (var c in token[1..])
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
            seconds = seconds * 10 + (c - '0');
        }
        if (seconds > MaxSeconds)
        {
            return false;
        }
        maxFileAge = TimeSpan.FromTicks(seconds * TimeSpan.TicksPerSecond);
        return true;
    }
}
